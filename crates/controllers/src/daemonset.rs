//! The `daemonset` controller (upstream `pkg/controller/daemon`): one pod per eligible node
//! for each DaemonSet, placed by the scheduler through a `metadata.name` node affinity;
//! template history in ControllerRevisions; RollingUpdate (maxUnavailable or maxSurge) and
//! OnDelete updates; and the status `kubectl rollout status ds/x` reads.
//!
//! Decisions are pure functions in [`util`]; the reconcile here reads the caches, applies
//! the plan through the API and writes the status. Creations and deletions in flight are
//! tracked as expectations, as in the ReplicaSet controller.

pub mod util;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use rkube_api::selector::LabelSelector;
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::claim::claim;
use crate::controller::{controller_ref, key_of, name_of, new_controller_ref, resolve, run_workers, RESYNC_PERIOD};
use crate::error::{is_conflict, is_not_found, message, Error, Result};
use crate::events::{Recorder, NORMAL, WARNING};
use crate::expectations::Expectations;
use crate::history::{self, CONTROLLER_REVISION_HASH};
use crate::informer::{Change, Informer, Informers};
use crate::replicaset::{pod_from_template, slow_start_batch};
use util::{NodeFit, Plan};

pub struct DaemonSetController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    daemonsets: Arc<Informer<DaemonSet>>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    revisions: Arc<Informer<ControllerRevision>>,
    expectations: Expectations,
    recorder: Recorder,
    queue: crate::queue::WorkQueue<ObjectKey>,
}

impl DaemonSetController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            daemonsets: informers.get::<DaemonSet>(),
            pods: informers.get::<Pod>(),
            nodes: informers.get::<Node>(),
            revisions: informers.get::<ControllerRevision>(),
            expectations: Expectations::default(),
            recorder: Recorder::new(informers.client().clone(), "daemonset-controller"),
            queue: Default::default(),
        });
        let queue = ctx.queue.clone();
        let weak = Arc::downgrade(&ctx);
        ctx.daemonsets.add_handler(move |change| match change {
            Change::Applied { new, .. } => queue.add(key_of(new.as_ref())),
            Change::Deleted(ds) => {
                if let Some(ctx) = weak.upgrade() {
                    ctx.expectations.delete(&key_of(ds.as_ref()));
                }
                queue.add(key_of(ds.as_ref()));
            }
        });
        let weak = Arc::downgrade(&ctx);
        ctx.pods.add_handler(move |change| {
            if let Some(ctx) = weak.upgrade() {
                ctx.pod_changed(change);
            }
        });
        let weak = Arc::downgrade(&ctx);
        ctx.nodes.add_handler(move |change| {
            let relevant = match change {
                Change::Applied { old: None, .. } | Change::Deleted(_) => true,
                Change::Applied { old: Some(old), new } => {
                    old.metadata.labels != new.metadata.labels || old.spec != new.spec
                }
            };
            if let (true, Some(ctx)) = (relevant, weak.upgrade()) {
                for ds in ctx.daemonsets.store().state() {
                    ctx.queue.add(key_of(ds.as_ref()));
                }
            }
        });
        DaemonSetController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("daemonset", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

impl Context {
    fn owner_of(&self, pod: &Pod) -> Option<Arc<DaemonSet>> {
        let r = controller_ref(&pod.metadata)?;
        resolve(r, pod.metadata.namespace.as_deref(), |ns, name| self.daemonsets.get(ns, name))
    }

    fn pod_changed(&self, change: &Change<Pod>) {
        match change {
            Change::Applied { old, new } => {
                match self.owner_of(new) {
                    Some(ds) => {
                        let key = key_of(ds.as_ref());
                        if old.is_none() {
                            self.expectations.creation_observed(&key);
                        }
                        if crate::pods::is_terminating(new) {
                            self.expectations.deletion_observed(&key, &name_of(&new.metadata));
                        }
                        self.queue.add(key);
                    }
                    None if controller_ref(&new.metadata).is_none() => {
                        // An orphan: every DaemonSet of the namespace may want to adopt it.
                        for ds in self.daemonsets.in_namespace(new.metadata.namespace.as_deref().unwrap_or_default()) {
                            self.queue.add(key_of(ds.as_ref()));
                        }
                    }
                    None => {}
                }
                if let Some(old_owner) = old.as_ref().and_then(|o| self.owner_of(o)) {
                    self.queue.add(key_of(old_owner.as_ref()));
                }
            }
            Change::Deleted(pod) => {
                if let Some(ds) = self.owner_of(pod) {
                    self.expectations.deletion_observed(&key_of(ds.as_ref()), &name_of(&pod.metadata));
                    self.queue.add(key_of(ds.as_ref()));
                }
            }
        }
    }

    /// Upstream `syncDaemonSet`.
    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(ds) = self.daemonsets.get(key.namespace.as_deref(), &key.name) else {
            self.expectations.delete(key);
            return Ok(None);
        };
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let spec = ds.spec.clone().unwrap_or_default();
        let selector = match LabelSelector::from_k8s(&spec.selector) {
            Ok(s) if !s.is_empty() => s,
            _ => {
                tracing::debug!(object = %key, "invalid or empty selector");
                return Ok(None);
            }
        };
        let namespace = key.namespace.as_deref().unwrap_or_default();
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        // History first: the current revision's hash labels the pods created below.
        let revisions = history::owned(&self.revisions, namespace, &uid);
        let template = spec.template.clone();
        let owner = history::Owner {
            reference: new_controller_ref(ds.as_ref()),
            namespace,
            labels: template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default(),
            collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
        };
        let current = history::ensure(&self.client, &owner, &revisions, history::template_patch(&template)).await?;
        let hash = current.metadata.labels.as_ref().and_then(|l| l.get(history::REVISION_HASH_LABEL)).cloned().unwrap_or_default();

        let candidates: Vec<Arc<Pod>> = self.pods.in_namespace(namespace);
        let claimed = claim(&self.client, &owner.reference, false, &selector, candidates).await?;
        let mut node_pods: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
        for p in &claimed {
            let finished_and_deleting = crate::pods::is_terminating(p) && !crate::pods::is_active(p);
            if let (Some(node), false) = (util::target_node(p), finished_and_deleting) {
                node_pods.entry(node).or_default().push(p.as_ref());
            }
        }
        let mut nodes: Vec<NodeFit> = self
            .nodes
            .store()
            .state()
            .iter()
            .map(|n| {
                let (should_run, should_continue) = util::should_run(template.spec.as_ref().unwrap_or(&Default::default()), n);
                NodeFit { name: n.metadata.name.clone().unwrap_or_default(), should_run, should_continue }
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));

        let now = crate::clock::now();
        let min_ready = Duration::from_secs(spec.min_ready_seconds.unwrap_or(0).max(0) as u64);
        let strategy = spec.update_strategy.as_ref().and_then(|u| u.type_.as_deref()).unwrap_or("RollingUpdate");
        let desired = nodes.iter().filter(|n| n.should_run).count() as i32;
        let (max_surge, max_unavailable) = util::surge_and_unavailable(&ds, desired);
        let surge = strategy == "RollingUpdate" && max_surge > 0;
        let mut result = Ok(());
        if self.expectations.satisfied(key) {
            let mut plan = util::manage(&nodes, &node_pods, &hash, surge, min_ready, now);
            if strategy == "RollingUpdate" {
                let update = util::rolling_update(&node_pods, &hash, max_surge, max_unavailable, min_ready, now);
                plan.create.extend(update.create.into_iter().filter(|n| nodes.iter().any(|f| &f.name == n && f.should_run)));
                plan.delete.extend(update.delete);
            }
            plan.create.dedup();
            let mut seen = HashSet::new();
            plan.delete.retain(|n| seen.insert(n.clone()));
            result = self.sync_nodes(&ds, key, plan, &hash).await;
        }
        // Old revisions no pod uses any more are trimmed to revisionHistoryLimit.
        let mut live: HashSet<String> = claimed
            .iter()
            .filter_map(|p| p.metadata.labels.as_ref()?.get(CONTROLLER_REVISION_HASH).map(|h| format!("{}-{h}", key.name)))
            .collect();
        live.insert(current.metadata.name.clone().unwrap_or_default());
        let limit = spec.revision_history_limit.unwrap_or(history::DEFAULT_HISTORY_LIMIT);
        let revisions = history::owned(&self.revisions, namespace, &uid);
        history::delete(&self.client, namespace, &history::to_truncate(&revisions, &live, limit)).await?;

        let status = util::status(&ds, &nodes, &node_pods, &hash, now);
        self.update_status(&ds, status.clone()).await?;
        result?;
        if !min_ready.is_zero() && status.number_ready != status.number_available.unwrap_or(0) {
            return Ok(Some(min_ready.min(RESYNC_PERIOD)));
        }
        Ok(Some(RESYNC_PERIOD))
    }

    /// Upstream `syncNodes`: creates the pods (slow-start batches) and deletes the victims.
    async fn sync_nodes(&self, ds: &Arc<DaemonSet>, key: &ObjectKey, plan: Plan, hash: &str) -> Result<()> {
        if plan.create.is_empty() && plan.delete.is_empty() {
            return Ok(());
        }
        let namespace = key.namespace.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let create = plan.create.len().min(crate::replicaset::BURST_REPLICAS);
        let victims = plan.delete.iter().map(|n| format!("{namespace}/{n}"));
        self.expectations.expect(key, create, victims);
        let template = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        let (created, error) = slow_start_batch(create, |i| {
            let mut pod = pod_from_template(&template, &ds.metadata, new_controller_ref(ds.as_ref()));
            let labels = pod.metadata.labels.get_or_insert_with(Default::default);
            labels.insert(CONTROLLER_REVISION_HASH.into(), hash.into());
            if let Some(g) = ds.metadata.generation {
                labels.insert(util::POD_TEMPLATE_GENERATION.into(), g.to_string());
            }
            let spec = pod.spec.get_or_insert_with(Default::default);
            util::add_default_tolerations(spec);
            spec.affinity = Some(util::node_name_affinity(spec.affinity.take(), &plan.create[i]));
            let api = &api;
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(p) => {
                        let name = p.metadata.name.unwrap_or_default();
                        self.recorder.event(ds.as_ref(), NORMAL, "SuccessfulCreate", format!("Created pod: {name}"));
                        Ok(())
                    }
                    Err(e) => {
                        self.recorder.event(ds.as_ref(), WARNING, "FailedCreate", format!("Error creating: {}", message(&e)));
                        Err(Error::api("create", format!("daemon pod for {key}"), e))
                    }
                }
            }
        })
        .await;
        for _ in created..create {
            self.expectations.creation_observed(key);
        }
        let deletes = join_all(plan.delete.iter().map(|name| {
            let api = &api;
            async move {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {
                        self.recorder.event(ds.as_ref(), NORMAL, "SuccessfulDelete", format!("Deleted pod: {name}"));
                        Ok(())
                    }
                    Err(e) => {
                        self.expectations.deletion_observed(key, &format!("{namespace}/{name}"));
                        if is_not_found(&e) {
                            return Ok(());
                        }
                        self.recorder.event(ds.as_ref(), WARNING, "FailedDelete", format!("Error deleting: {}", message(&e)));
                        Err(Error::api("delete", format!("{namespace}/{name}"), e))
                    }
                }
            }
        }))
        .await;
        if let Some(e) = error {
            return Err(e);
        }
        deletes.into_iter().find_map(|r| r.err()).map_or(Ok(()), Err)
    }

    async fn update_status(&self, ds: &DaemonSet, status: DaemonSetStatus) -> Result<()> {
        if ds.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ds.metadata.namespace.as_deref().unwrap_or_default());
        let name = ds.metadata.name.clone().unwrap_or_default();
        let mut updated = ds.clone();
        updated.status = Some(status.clone());
        for attempt in 0..2 {
            match api.replace_status(&name, &PostParams::default(), &updated).await {
                Ok(_) => return Ok(()),
                Err(e) if is_conflict(&e) && attempt == 0 => {
                    updated = api.get(&name).await.map_err(|e| Error::api("get", &name, e))?;
                    updated.status = Some(status.clone());
                }
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(Error::api("update status of", format!("daemonset {name}"), e)),
            }
        }
        Ok(())
    }
}
