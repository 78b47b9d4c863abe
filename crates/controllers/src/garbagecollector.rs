//! The `garbage-collector` controller (upstream `pkg/controller/garbagecollector`): an
//! ownerReferences graph built from the shared informers, and three jobs over it:
//!
//! - **attempt to delete**: an object whose owners are all gone (confirmed by a live read, so
//!   a lagging cache never deletes anything) is deleted; owners that are gone are removed
//!   from the references of an object that still has a live owner.
//! - **foreground deletion**: an owner being deleted with the `foregroundDeletion` finalizer
//!   has its dependents deleted (foreground again when they have dependents of their own);
//!   once no dependent with `blockOwnerDeletion` is left, the finalizer is removed and the
//!   API server removes the owner.
//! - **orphaning**: an owner being deleted with the `orphan` finalizer has itself removed from
//!   its dependents' ownerReferences, then the finalizer removed.
//!
//! The graph covers the kinds in [`KINDS`] (the built-in workload, service and config
//! kinds); references to owners of other kinds are left alone.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::Resource;
use rkube_api::ObjectKey;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller::{run_workers, RESYNC_PERIOD};
use crate::error::{is_conflict, is_not_found, Error, Result};
use crate::informer::{Change, Informers, Watched};
use crate::queue::WorkQueue;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// The kinds in the graph: (group, kind).
pub const KINDS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("apps", "ReplicaSet"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ControllerRevision"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("", "Service"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "PersistentVolumeClaim"),
];

/// One object in the graph: its kind (index into [`KINDS`]), name and UID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    pub kind: usize,
    pub key: ObjectKey,
    pub uid: String,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", KINDS[self.kind].1, self.key)
    }
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn kind_index(api_version: &str, kind: &str) -> Option<usize> {
    let group = group_of(api_version);
    KINDS.iter().position(|(g, k)| *g == group && *k == kind)
}

fn has_finalizer(meta: &ObjectMeta, f: &str) -> bool {
    meta.finalizers.iter().flatten().any(|x| x == f)
}

/// Reads and writes of one kind, through its informer and API.
trait KindOps: Send + Sync {
    fn cached(&self, key: &ObjectKey) -> Option<ObjectMeta>;
    fn get(&self, key: &ObjectKey) -> BoxFuture<'_, Result<Option<ObjectMeta>, kube::Error>>;
    fn delete(&self, key: &ObjectKey, uid: &str, policy: PropagationPolicy) -> BoxFuture<'_, Result<(), kube::Error>>;
    fn patch(&self, key: &ObjectKey, patch: serde_json::Value) -> BoxFuture<'_, Result<(), kube::Error>>;
}

struct Typed<K: Watched> {
    informer: Arc<crate::informer::Informer<K>>,
    client: kube::Client,
}

impl<K> Typed<K>
where
    K: Watched + Resource<Scope = NamespaceResourceScope> + serde::Serialize,
{
    fn api(&self, key: &ObjectKey) -> Api<K> {
        Api::namespaced(self.client.clone(), key.namespace.as_deref().unwrap_or_default())
    }
}

impl<K> KindOps for Typed<K>
where
    K: Watched + Resource<Scope = NamespaceResourceScope> + serde::Serialize,
{
    fn cached(&self, key: &ObjectKey) -> Option<ObjectMeta> {
        self.informer.get(key.namespace.as_deref(), &key.name).map(|o| o.meta().clone())
    }

    fn get(&self, key: &ObjectKey) -> BoxFuture<'_, Result<Option<ObjectMeta>, kube::Error>> {
        let api = self.api(key);
        let name = key.name.clone();
        Box::pin(async move { Ok(api.get_opt(&name).await?.map(|o| o.meta().clone())) })
    }

    fn delete(&self, key: &ObjectKey, uid: &str, policy: PropagationPolicy) -> BoxFuture<'_, Result<(), kube::Error>> {
        let api = self.api(key);
        let name = key.name.clone();
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions { uid: Some(uid.to_owned()), resource_version: None }),
            ..Default::default()
        };
        Box::pin(async move { api.delete(&name, &params).await.map(|_| ()) })
    }

    fn patch(&self, key: &ObjectKey, patch: serde_json::Value) -> BoxFuture<'_, Result<(), kube::Error>> {
        let api = self.api(key);
        let name = key.name.clone();
        Box::pin(async move { api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ()) })
    }
}

/// Owner UID → dependents, and UID → node, kept by the informer handlers.
#[derive(Default)]
struct Graph {
    dependents: HashMap<String, HashSet<Node>>,
    nodes: HashMap<String, (Node, Vec<String>)>,
}

impl Graph {
    /// Records `node` with these owner UIDs; returns the UIDs it no longer references.
    fn upsert(&mut self, node: Node, owners: Vec<String>) {
        self.remove(&node.uid);
        for o in &owners {
            self.dependents.entry(o.clone()).or_default().insert(node.clone());
        }
        self.nodes.insert(node.uid.clone(), (node, owners));
    }

    fn remove(&mut self, uid: &str) {
        if let Some((node, owners)) = self.nodes.remove(uid) {
            for o in owners {
                if let Some(set) = self.dependents.get_mut(&o) {
                    set.remove(&node);
                    if set.is_empty() {
                        self.dependents.remove(&o);
                    }
                }
            }
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<Node> {
        self.dependents.get(uid).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }
}

/// How an owner reference stands (upstream `classifyReferences`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists and is not waiting for its dependents.
    Solid,
    /// Gone, or replaced by another object of the same name.
    Dangling,
    /// Being deleted in the foreground: waiting for its dependents.
    WaitingForDependents,
}

/// The owner's state from its current metadata (`None` when it does not exist).
pub fn owner_state(reference: &OwnerReference, owner: Option<&ObjectMeta>) -> OwnerState {
    match owner {
        Some(m) if m.uid.as_deref() == Some(reference.uid.as_str()) => {
            if m.deletion_timestamp.is_some() && has_finalizer(m, FOREGROUND) {
                OwnerState::WaitingForDependents
            } else {
                OwnerState::Solid
            }
        }
        _ => OwnerState::Dangling,
    }
}

/// What to do with an object that has owners, given their states (upstream
/// `attemptToDeleteItem`).
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Remove these owner UIDs from the references (a solid owner remains).
    RemoveReferences(Vec<String>),
    Delete(Propagation),
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

pub fn verdict(meta: &ObjectMeta, states: &[(String, OwnerState)], has_dependents: bool) -> Verdict {
    let solid = states.iter().any(|(_, s)| *s == OwnerState::Solid);
    let waiting = states.iter().any(|(_, s)| *s == OwnerState::WaitingForDependents);
    if solid {
        let remove: Vec<String> = states.iter().filter(|(_, s)| *s != OwnerState::Solid).map(|(u, _)| u.clone()).collect();
        return if remove.is_empty() { Verdict::Keep } else { Verdict::RemoveReferences(remove) };
    }
    if waiting && has_dependents {
        return Verdict::Delete(Propagation::Foreground);
    }
    let policy = if has_finalizer(meta, ORPHAN) {
        Propagation::Orphan
    } else if has_finalizer(meta, FOREGROUND) || waiting {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    Verdict::Delete(policy)
}

pub struct GarbageCollector {
    ctx: Arc<Context>,
}

struct Context {
    kinds: Vec<Box<dyn KindOps>>,
    graph: Arc<Mutex<Graph>>,
    queue: WorkQueue<Node>,
}

/// Adds kind `K` (at index `kinds.len()`, which must match [`KINDS`]) to the graph.
fn watch<K>(informers: &Informers, kinds: &mut Vec<Box<dyn KindOps>>, graph: &Arc<Mutex<Graph>>, queue: &WorkQueue<Node>)
where
    K: Watched + Resource<Scope = NamespaceResourceScope> + serde::Serialize,
{
    let index = kinds.len();
    debug_assert_eq!(KINDS[index].1, K::kind(&()));
    let informer = informers.get::<K>();
    let (graph, queue) = (graph.clone(), queue.clone());
    informer.add_handler(move |change| {
        let mut g = graph.lock().unwrap_or_else(|e| e.into_inner());
        match change {
            Change::Applied { new, .. } => {
                let meta = new.meta();
                let node = Node {
                    kind: index,
                    key: crate::controller::key_of(new.as_ref()),
                    uid: meta.uid.clone().unwrap_or_default(),
                };
                let owners: Vec<String> = meta.owner_references.iter().flatten().map(|r| r.uid.clone()).collect();
                let deleting = meta.deletion_timestamp.is_some()
                    && (has_finalizer(meta, FOREGROUND) || has_finalizer(meta, ORPHAN));
                if !owners.is_empty() || deleting {
                    queue.add(node.clone());
                }
                g.upsert(node, owners);
            }
            Change::Deleted(old) => {
                let meta = old.meta();
                let uid = meta.uid.clone().unwrap_or_default();
                // Dependents may now be dangling; owners waiting for dependents may be done.
                for dep in g.dependents_of(&uid) {
                    queue.add(dep);
                }
                for r in meta.owner_references.iter().flatten() {
                    if let Some((owner, _)) = g.nodes.get(&r.uid) {
                        queue.add(owner.clone());
                    }
                }
                g.remove(&uid);
            }
        }
    });
    kinds.push(Box::new(Typed::<K> { informer, client: informers.client().clone() }));
}

impl GarbageCollector {
    /// Registers handlers on the informers of every kind in [`KINDS`].
    pub fn new(informers: &Informers) -> Self {
        let queue = WorkQueue::default();
        let graph = Arc::new(Mutex::new(Graph::default()));
        let mut kinds: Vec<Box<dyn KindOps>> = Vec::new();
        let k = &mut kinds;
        // In the order of KINDS.
        watch::<Pod>(informers, k, &graph, &queue);
        watch::<ReplicaSet>(informers, k, &graph, &queue);
        watch::<Deployment>(informers, k, &graph, &queue);
        watch::<StatefulSet>(informers, k, &graph, &queue);
        watch::<DaemonSet>(informers, k, &graph, &queue);
        watch::<ControllerRevision>(informers, k, &graph, &queue);
        watch::<Job>(informers, k, &graph, &queue);
        watch::<CronJob>(informers, k, &graph, &queue);
        watch::<Service>(informers, k, &graph, &queue);
        watch::<EndpointSlice>(informers, k, &graph, &queue);
        watch::<ConfigMap>(informers, k, &graph, &queue);
        watch::<Secret>(informers, k, &graph, &queue);
        watch::<PersistentVolumeClaim>(informers, k, &graph, &queue);
        GarbageCollector { ctx: Arc::new(Context { kinds, graph, queue }) }
    }

    /// Collects until `shutdown`, with `workers` concurrent workers.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("garbagecollector", queue, workers, shutdown, move |node| {
            let ctx = ctx.clone();
            async move { ctx.process(&node).await }
        })
        .await;
    }
}

impl Context {
    fn dependents(&self, uid: &str) -> Vec<Node> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner()).dependents_of(uid)
    }

    async fn process(&self, node: &Node) -> Result<Option<std::time::Duration>> {
        let ops = &self.kinds[node.kind];
        let Some(meta) = ops.cached(&node.key) else { return Ok(None) };
        if meta.uid.as_deref() != Some(node.uid.as_str()) {
            return Ok(None);
        }
        if meta.deletion_timestamp.is_some() {
            if has_finalizer(&meta, ORPHAN) {
                self.orphan_dependents(node, &meta).await?;
            } else if has_finalizer(&meta, FOREGROUND) {
                self.delete_dependents(node, &meta).await?;
            }
            return Ok(None);
        }
        if meta.owner_references.as_ref().is_none_or(|r| r.is_empty()) {
            return Ok(None);
        }
        self.attempt_to_delete(node, &meta).await?;
        Ok(Some(RESYNC_PERIOD))
    }

    /// Upstream `attemptToDeleteItem`.
    async fn attempt_to_delete(&self, node: &Node, meta: &ObjectMeta) -> Result<()> {
        let mut states = Vec::new();
        for r in meta.owner_references.iter().flatten() {
            let Some(kind) = kind_index(&r.api_version, &r.kind) else {
                states.push((r.uid.clone(), OwnerState::Solid)); // not in the graph: left alone
                continue;
            };
            let key = ObjectKey::new(node.key.namespace.as_deref(), &r.name);
            let cached = self.kinds[kind].cached(&key).filter(|m| m.uid.as_deref() == Some(r.uid.as_str()));
            let state = match cached {
                Some(m) => owner_state(r, Some(&m)),
                // Absent from the cache: confirm with a live read before calling it gone.
                None => {
                    let live = self.kinds[kind].get(&key).await.map_err(|e| Error::api("get", format!("owner {key}"), e))?;
                    owner_state(r, live.as_ref())
                }
            };
            states.push((r.uid.clone(), state));
        }
        let has_dependents = !self.dependents(&node.uid).is_empty();
        match verdict(meta, &states, has_dependents) {
            Verdict::Keep => Ok(()),
            Verdict::RemoveReferences(uids) => {
                let refs: Vec<&OwnerReference> = meta.owner_references.iter().flatten().filter(|r| !uids.contains(&r.uid)).collect();
                tracing::debug!(object = %node, "removing references to deleted owners");
                self.patch(node, json!({"metadata": {"ownerReferences": refs, "resourceVersion": meta.resource_version}})).await
            }
            Verdict::Delete(policy) => {
                let policy = match policy {
                    Propagation::Background => PropagationPolicy::Background,
                    Propagation::Foreground => PropagationPolicy::Foreground,
                    Propagation::Orphan => PropagationPolicy::Orphan,
                };
                tracing::debug!(object = %node, ?policy, "deleting object whose owners are gone");
                self.delete(node, policy).await
            }
        }
    }

    async fn delete(&self, node: &Node, policy: PropagationPolicy) -> Result<()> {
        match self.kinds[node.kind].delete(&node.key, &node.uid, policy).await {
            Ok(()) => Ok(()),
            // gone, or replaced (uid precondition failed)
            Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
            Err(e) => Err(Error::api("delete", node, e)),
        }
    }

    async fn patch(&self, node: &Node, patch: serde_json::Value) -> Result<()> {
        match self.kinds[node.kind].patch(&node.key, patch).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api("patch", node, e)),
        }
    }

    async fn remove_finalizer(&self, node: &Node, meta: &ObjectMeta, finalizer: &str) -> Result<()> {
        let rest: Vec<&String> = meta.finalizers.iter().flatten().filter(|f| *f != finalizer).collect();
        self.patch(node, json!({"metadata": {"finalizers": rest, "resourceVersion": meta.resource_version}})).await
    }

    /// Upstream `processDeletingDependentsItem`: delete the dependents, and remove the
    /// `foregroundDeletion` finalizer once none blocks the owner any more.
    async fn delete_dependents(&self, node: &Node, meta: &ObjectMeta) -> Result<()> {
        let mut blocking = 0;
        for dep in self.dependents(&node.uid) {
            let Some(dep_meta) = self.kinds[dep.kind].cached(&dep.key) else { continue };
            let blocks = dep_meta
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == node.uid && r.block_owner_deletion == Some(true));
            if blocks {
                blocking += 1;
            }
            if dep_meta.deletion_timestamp.is_none() {
                let has_own = !self.dependents(&dep.uid).is_empty();
                let policy = if has_own { PropagationPolicy::Foreground } else { PropagationPolicy::Background };
                self.delete(&dep, policy).await?;
            }
        }
        if blocking == 0 {
            tracing::debug!(object = %node, "dependents gone; removing the foregroundDeletion finalizer");
            return self.remove_finalizer(node, meta, FOREGROUND).await;
        }
        Ok(())
    }

    /// Upstream `orphanDependents`, then the `orphan` finalizer removed.
    async fn orphan_dependents(&self, node: &Node, meta: &ObjectMeta) -> Result<()> {
        for dep in self.dependents(&node.uid) {
            let Some(dep_meta) = self.kinds[dep.kind].cached(&dep.key) else { continue };
            let refs: Vec<&OwnerReference> = dep_meta.owner_references.iter().flatten().filter(|r| r.uid != node.uid).collect();
            let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": dep_meta.resource_version}});
            self.patch(&dep, patch).await?;
        }
        self.remove_finalizer(node, meta, ORPHAN).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(uid: &str) -> OwnerReference {
        OwnerReference { uid: uid.into(), api_version: "apps/v1".into(), kind: "ReplicaSet".into(), ..Default::default() }
    }

    fn meta(uid: &str, deleting: bool, finalizers: &[&str]) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            deletion_timestamp: deleting.then_some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH)),
            finalizers: Some(finalizers.iter().map(|f| f.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn owners_are_classified_by_uid_and_foreground_deletion() {
        let r = reference("a");
        assert_eq!(owner_state(&r, None), OwnerState::Dangling);
        assert_eq!(owner_state(&r, Some(&meta("b", false, &[]))), OwnerState::Dangling, "same name, new object");
        assert_eq!(owner_state(&r, Some(&meta("a", false, &[]))), OwnerState::Solid);
        assert_eq!(owner_state(&r, Some(&meta("a", true, &[]))), OwnerState::Solid, "background deletion in progress");
        assert_eq!(owner_state(&r, Some(&meta("a", true, &[FOREGROUND]))), OwnerState::WaitingForDependents);
    }

    #[test]
    fn objects_are_deleted_only_when_no_owner_is_left() {
        let m = meta("x", false, &[]);
        let s = |v: &[(&str, OwnerState)]| v.iter().map(|(u, s)| (u.to_string(), s.clone())).collect::<Vec<_>>();
        assert_eq!(verdict(&m, &s(&[("a", OwnerState::Solid)]), false), Verdict::Keep);
        assert_eq!(verdict(&m, &s(&[("a", OwnerState::Solid), ("b", OwnerState::Dangling)]), false), Verdict::RemoveReferences(vec!["b".into()]));
        assert_eq!(verdict(&m, &s(&[("a", OwnerState::Dangling)]), true), Verdict::Delete(Propagation::Background));
        assert_eq!(verdict(&m, &s(&[("a", OwnerState::WaitingForDependents)]), true), Verdict::Delete(Propagation::Foreground));
        assert_eq!(verdict(&meta("x", false, &[ORPHAN]), &s(&[("a", OwnerState::Dangling)]), true), Verdict::Delete(Propagation::Orphan));
    }

    #[test]
    fn the_graph_tracks_dependents_by_owner_uid() {
        let mut g = Graph::default();
        let pod = Node { kind: 0, key: ObjectKey::new(Some("ns"), "p"), uid: "p".into() };
        g.upsert(pod.clone(), vec!["rs".into()]);
        assert_eq!(g.dependents_of("rs"), vec![pod.clone()]);
        g.upsert(pod.clone(), vec![]);
        assert!(g.dependents_of("rs").is_empty(), "a released dependent leaves its old owner");
        g.upsert(pod.clone(), vec!["rs2".into()]);
        g.remove("p");
        assert!(g.dependents_of("rs2").is_empty());
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(kind_index("v1", "Pod"), Some(0));
        assert_eq!(kind_index("apps/v1", "Pod"), None);
    }
}
