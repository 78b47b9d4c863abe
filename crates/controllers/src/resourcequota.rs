//! The `resourcequota` controller (upstream `pkg/controller/resourcequota`): keeps each
//! ResourceQuota's status — `hard` copied from the spec, `used` computed from the objects of
//! its namespace (pods and their compute requests and limits, object counts, services'
//! node ports and load balancers) with the arithmetic the admission plugin uses
//! ([`rkube_api::quota`]).
//!
//! The admission plugin charges each create to the quotas as it happens; this controller
//! recomputes from the shared caches whenever a tracked object in the namespace changes or
//! goes away (upstream's replenishment), and periodically, so deletions, finished pods and
//! creates that failed after admission give their usage back.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, ResourceQuotaStatus, Secret, Service,
};
use kube::api::{Api, PostParams};
use rkube_api::quota;
use rkube_api::ObjectKey;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::controller::{key_of, run_workers, RESYNC_PERIOD};
use crate::error::{is_not_found, Error, Result};
use crate::informer::{Change, Informer, Informers, Watched};
use crate::queue::WorkQueue;

type Lister = Box<dyn Fn(&str) -> Vec<Value> + Send + Sync>;

/// One kind of object quota counts, read from its shared cache.
struct Tracked {
    group: &'static str,
    plural: &'static str,
    list: Lister,
}

pub struct ResourceQuotaController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    quotas: Arc<Informer<ResourceQuota>>,
    tracked: Vec<Tracked>,
    queue: WorkQueue<ObjectKey>,
}

/// Enqueues every quota of `namespace`.
fn enqueue_namespace(quotas: &Informer<ResourceQuota>, queue: &WorkQueue<ObjectKey>, namespace: &str) {
    for q in quotas.in_namespace(namespace) {
        queue.add(key_of(q.as_ref()));
    }
}

fn track<K: Watched + serde::Serialize>(
    informers: &Informers,
    quotas: &Arc<Informer<ResourceQuota>>,
    queue: &WorkQueue<ObjectKey>,
    group: &'static str,
    plural: &'static str,
) -> Tracked {
    let informer = informers.get::<K>();
    let (q, wq) = (quotas.clone(), queue.clone());
    // Upstream's replenishment: only what gives usage back (a deletion, a pod that finished)
    // triggers a recount. Creations were charged by admission already; recounting on them
    // from a cache that has not seen every admitted create yet would lower `used` under
    // concurrent creates and let them overshoot.
    informer.add_handler(move |change| {
        let released = match change {
            Change::Deleted(old) => Some(old),
            Change::Applied { old: Some(old), new } if plural == "pods" && group.is_empty() => {
                let counts = |o: &K| serde_json::to_value(o).is_ok_and(|v| quota::pod_counts(&v, crate::clock::now()));
                (counts(old) && !counts(new)).then_some(new)
            }
            Change::Applied { .. } => None,
        };
        if let Some(ns) = released.and_then(|o| o.meta().namespace.clone()) {
            enqueue_namespace(&q, &wq, &ns);
        }
    });
    let list: Lister = Box::new(move |ns| {
        informer.in_namespace(ns).iter().filter_map(|o| serde_json::to_value(o.as_ref()).ok()).collect()
    });
    Tracked { group, plural, list }
}

impl ResourceQuotaController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let quotas = informers.get::<ResourceQuota>();
        let queue: WorkQueue<ObjectKey> = WorkQueue::default();
        let q = queue.clone();
        // A new quota or a changed spec is counted; status writes (admission's charges, our
        // own) are not a reason to recount.
        quotas.add_handler(move |change| match change {
            Change::Applied { old, new } if old.as_ref().is_none_or(|o| o.spec != new.spec) => q.add(key_of(new.as_ref())),
            Change::Applied { .. } | Change::Deleted(_) => {}
        });
        let tracked = vec![
            track::<Pod>(informers, &quotas, &queue, "", "pods"),
            track::<Service>(informers, &quotas, &queue, "", "services"),
            track::<ConfigMap>(informers, &quotas, &queue, "", "configmaps"),
            track::<Secret>(informers, &quotas, &queue, "", "secrets"),
            track::<PersistentVolumeClaim>(informers, &quotas, &queue, "", "persistentvolumeclaims"),
            track::<ReplicationController>(informers, &quotas, &queue, "", "replicationcontrollers"),
            track::<ResourceQuota>(informers, &quotas, &queue, "", "resourcequotas"),
            track::<Deployment>(informers, &quotas, &queue, "apps", "deployments"),
            track::<ReplicaSet>(informers, &quotas, &queue, "apps", "replicasets"),
            track::<StatefulSet>(informers, &quotas, &queue, "apps", "statefulsets"),
            track::<DaemonSet>(informers, &quotas, &queue, "apps", "daemonsets"),
            track::<Job>(informers, &quotas, &queue, "batch", "jobs"),
            track::<CronJob>(informers, &quotas, &queue, "batch", "cronjobs"),
        ];
        let ctx = Arc::new(Context { client: informers.client().clone(), quotas, tracked, queue });
        ResourceQuotaController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("resourcequota", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

/// The status a quota should have given the usage per tracked kind: `hard` from the spec,
/// `used` for every hard resource (zero where nothing counted it).
pub fn quota_status(quota: &Value, usages: &[quota::ResourceList]) -> Value {
    let hard = quota::parse_list(&quota["spec"]["hard"]);
    let names: BTreeSet<String> = hard.keys().cloned().collect();
    let mut used: quota::ResourceList = names.iter().map(|n| (n.clone(), rkube_api::quantity::Quantity::parse("0").expect("0 parses"))).collect();
    for u in usages {
        used = quota::add(&used, &quota::mask(u, &names));
    }
    serde_json::json!({"hard": quota::list_to_value(&hard), "used": quota::list_to_value(&used)})
}

impl Context {
    /// Upstream `syncResourceQuota`.
    async fn sync(&self, key: &ObjectKey) -> Result<Option<std::time::Duration>> {
        let Some(rq) = self.quotas.get(key.namespace.as_deref(), &key.name) else {
            return Ok(None);
        };
        let value = serde_json::to_value(rq.as_ref()).map_err(|e| Error::Failed(e.to_string()))?;
        let ns = key.namespace.as_deref().unwrap_or_default();
        let now = crate::clock::now();
        let usages: Vec<quota::ResourceList> = self
            .tracked
            .iter()
            .filter(|t| value["spec"]["hard"].as_object().is_some_and(|h| h.keys().any(|k| quota::handles(t.group, t.plural, k))))
            .map(|t| {
                let objects = (t.list)(ns);
                quota::calculate_usage(&value, t.group, t.plural, objects.iter(), now)
            })
            .collect();
        let status = quota_status(&value, &usages);
        let current = serde_json::to_value(rq.status.clone().unwrap_or_default()).unwrap_or_default();
        if same_lists(&current["hard"], &status["hard"]) && same_lists(&current["used"], &status["used"]) {
            return Ok(Some(RESYNC_PERIOD));
        }
        let mut updated = (*rq).clone();
        updated.status = Some(serde_json::from_value::<ResourceQuotaStatus>(status).map_err(|e| Error::Failed(e.to_string()))?);
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), ns);
        // The cached resourceVersion makes this a compare-and-swap with admission's charges.
        match api.replace_status(&key.name, &PostParams::default(), &updated).await {
            Ok(_) => Ok(Some(RESYNC_PERIOD)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::api("update status of", format!("resourcequota {key}"), e)),
        }
    }
}

/// Equal as quantities (`1000m` equals `1`).
fn same_lists(a: &Value, b: &Value) -> bool {
    let (a, b) = (quota::parse_list(a), quota::parse_list(b));
    a.len() == b.len() && a.iter().all(|(k, q)| b.get(k) == Some(q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_copies_hard_and_reports_zero_for_unused_resources() {
        let q = json!({"spec": {"hard": {"pods": "2", "services": "1", "limits.cpu": "1000m"}}});
        let pods = quota::parse_list(&json!({"pods": "1", "count/pods": "3"}));
        let s = quota_status(&q, &[pods]);
        assert_eq!(s, json!({"hard": {"pods": "2", "services": "1", "limits.cpu": "1"}, "used": {"pods": "1", "services": "0", "limits.cpu": "0"}}));
        assert!(same_lists(&json!({"cpu": "1"}), &json!({"cpu": "1000m"})));
        assert!(!same_lists(&json!({"cpu": "1"}), &json!({"cpu": "1", "pods": "0"})));
    }
}
