//! The `statefulset` controller (upstream `pkg/controller/statefulset`): pods with stable
//! identities `<set>-<ordinal>` (hostname, subdomain = serviceName, and their own
//! PersistentVolumeClaims `<claim>-<set>-<ordinal>` from the volumeClaimTemplates, created
//! before the pod and kept when it goes), created in order and each only once the previous
//! is Running and Ready (OrderedReady) or all at once (Parallel), removed highest ordinal
//! first; template history in ControllerRevisions; RollingUpdate (with partition) and
//! OnDelete updates; and the status `kubectl rollout status sts/x` reads.
//!
//! Decisions are pure functions in [`util`]. There are no expectations, as upstream: pod
//! names are fixed, so a creation the cache has not seen yet fails with AlreadyExists, and
//! deletions carry the pod's UID as a precondition so a stale cache cannot delete its
//! replacement.

pub mod util;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use rkube_api::selector::LabelSelector;
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::claim::claim;
use crate::controller::{controller_ref, key_of, new_controller_ref, resolve, run_workers, RESYNC_PERIOD};
use crate::error::{is_conflict, is_not_found, message, status_code, Error, Result};
use crate::events::{Recorder, NORMAL, WARNING};
use crate::history;
use crate::informer::{Change, Informer, Informers};
use util::{Action, PlanInput, PodView};

pub struct StatefulSetController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    sets: Arc<Informer<StatefulSet>>,
    pods: Arc<Informer<Pod>>,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    revisions: Arc<Informer<ControllerRevision>>,
    recorder: Recorder,
    queue: crate::queue::WorkQueue<ObjectKey>,
}

impl StatefulSetController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            sets: informers.get::<StatefulSet>(),
            pods: informers.get::<Pod>(),
            claims: informers.get::<PersistentVolumeClaim>(),
            revisions: informers.get::<ControllerRevision>(),
            recorder: Recorder::new(informers.client().clone(), "statefulset-controller"),
            queue: Default::default(),
        });
        let queue = ctx.queue.clone();
        ctx.sets.add_handler(move |change| match change {
            Change::Applied { new, .. } => queue.add(key_of(new.as_ref())),
            Change::Deleted(set) => queue.add(key_of(set.as_ref())),
        });
        let weak = Arc::downgrade(&ctx);
        ctx.pods.add_handler(move |change| {
            let Some(ctx) = weak.upgrade() else { return };
            let (old, new) = match change {
                Change::Applied { old, new } => (old.clone(), new.clone()),
                Change::Deleted(p) => (None, p.clone()),
            };
            for pod in old.iter().chain(std::iter::once(&new)) {
                match ctx.owner_of(pod) {
                    Some(set) => ctx.queue.add(key_of(set.as_ref())),
                    None if controller_ref(&pod.metadata).is_none() => {
                        for set in ctx.sets.in_namespace(pod.metadata.namespace.as_deref().unwrap_or_default()) {
                            ctx.queue.add(key_of(set.as_ref()));
                        }
                    }
                    None => {}
                }
            }
        });
        StatefulSetController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("statefulset", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

impl Context {
    fn owner_of(&self, pod: &Pod) -> Option<Arc<StatefulSet>> {
        let r = controller_ref(&pod.metadata)?;
        resolve(r, pod.metadata.namespace.as_deref(), |ns, name| self.sets.get(ns, name))
    }

    /// Upstream `syncStatefulSet`.
    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(set) = self.sets.get(key.namespace.as_deref(), &key.name) else { return Ok(None) };
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let spec = set.spec.clone().unwrap_or_default();
        let selector = match LabelSelector::from_k8s(&spec.selector) {
            Ok(s) if !s.is_empty() => s,
            _ => {
                tracing::debug!(object = %key, "invalid or empty selector");
                return Ok(None);
            }
        };
        let namespace = key.namespace.as_deref().unwrap_or_default();
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let owner = new_controller_ref(set.as_ref());

        // Revisions: the update revision holds the live template; the current one is the
        // status' (or the update revision on the first sync).
        let revisions = history::owned(&self.revisions, namespace, &uid);
        let hist_owner = history::Owner {
            reference: owner.clone(),
            namespace,
            labels: spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default(),
            collision_count: set.status.as_ref().and_then(|s| s.collision_count),
        };
        let update = history::ensure(&self.client, &hist_owner, &revisions, history::template_patch(&spec.template)).await?;
        let update_name = update.metadata.name.clone().unwrap_or_default();
        let status_current = set.status.as_ref().and_then(|s| s.current_revision.clone());
        let current = revisions.iter().find(|r| r.metadata.name == status_current).map(|r| r.as_ref().clone()).unwrap_or_else(|| update.clone());
        let current_name = current.metadata.name.clone().unwrap_or_default();

        // Only pods named as members are claimed (upstream `isMemberOf` filter).
        let candidates: Vec<Arc<Pod>> =
            self.pods.in_namespace(namespace).into_iter().filter(|p| p.metadata.name.as_deref().and_then(|n| util::ordinal_of(&key.name, n)).is_some()).collect();
        let claimed = claim(&self.client, &owner, false, &selector, candidates).await?;
        let members: Vec<(i32, Arc<Pod>)> =
            claimed.into_iter().filter_map(|p| util::ordinal_of(&key.name, p.metadata.name.as_deref()?).map(|o| (o, p))).collect();
        let views: BTreeMap<i32, PodView> = members.iter().map(|(o, p)| (*o, PodView::of(p))).collect();
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let rolling = strategy.type_.as_deref().unwrap_or("RollingUpdate") == "RollingUpdate";
        let input = PlanInput {
            start: util::start_ordinal(&set),
            replicas: util::replicas(&set),
            ordered: spec.pod_management_policy.as_deref().unwrap_or("OrderedReady") == "OrderedReady",
            rolling,
            partition: strategy.rolling_update.as_ref().and_then(|r| r.partition).unwrap_or(0),
            current_revision: &current_name,
            update_revision: &update_name,
            pods: &views,
        };
        let actions = util::plan(&input);
        // Claim ownership first: a scaled-down pod must own its claims (whenScaled: Delete)
        // before it is deleted.
        for (ordinal, pod) in &members {
            let scaled_down = *ordinal < input.start || *ordinal >= input.start + input.replicas;
            self.update_claim_owners(&set, pod, *ordinal, scaled_down).await?;
        }
        let mut result = Ok(());
        for action in actions {
            if let Err(e) = self.apply(&set, &current, &update, action).await {
                result = Err(e);
                break;
            }
        }

        let mut live: HashSet<String> = views.values().map(|v| v.revision.clone()).collect();
        live.insert(current_name.clone());
        live.insert(update_name.clone());
        let limit = spec.revision_history_limit.unwrap_or(history::DEFAULT_HISTORY_LIMIT);
        let revisions = history::owned(&self.revisions, namespace, &uid);
        history::delete(&self.client, namespace, &history::to_truncate(&revisions, &live, limit)).await?;

        let pods: Vec<&Pod> = members.iter().map(|(_, p)| p.as_ref()).collect();
        let status = util::status(&set, &pods, &current_name, &update_name, crate::clock::now());
        self.update_status(&set, status.clone()).await?;
        result?;
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        if min_ready > 0 && status.ready_replicas != status.available_replicas {
            return Ok(Some(Duration::from_secs(min_ready as u64).min(RESYNC_PERIOD)));
        }
        Ok(Some(RESYNC_PERIOD))
    }

    async fn apply(&self, set: &Arc<StatefulSet>, current: &ControllerRevision, update: &ControllerRevision, action: Action) -> Result<()> {
        let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        match action {
            Action::Create { ordinal, revision } => {
                let from = if current.metadata.name.as_deref() == Some(revision.as_str()) { current } else { update };
                let template = history::template_of(from).unwrap_or_else(|| set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default());
                let pod = util::new_pod(set, &template, ordinal, &revision, new_controller_ref(set.as_ref()));
                let name = pod.metadata.name.clone().unwrap_or_default();
                self.create_claims(set, ordinal, &name).await?;
                match api.create(&PostParams::default(), &pod).await {
                    Ok(_) => {
                        self.recorder.event(set.as_ref(), NORMAL, "SuccessfulCreate", format!("create Pod {name} in StatefulSet {set_name} successful"));
                        Ok(())
                    }
                    // Created by an earlier sync the cache has not caught up with.
                    Err(e) if status_code(&e) == Some(409) => Ok(()),
                    Err(e) => {
                        self.recorder.event(set.as_ref(), WARNING, "FailedCreate", format!("create Pod {name} in StatefulSet {set_name} failed error: {}", message(&e)));
                        Err(Error::api("create", format!("pod {namespace}/{name}"), e))
                    }
                }
            }
            Action::Delete { name, uid } => {
                let params = DeleteParams { preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }), ..Default::default() };
                match api.delete(&name, &params).await {
                    Ok(_) => {
                        self.recorder.event(set.as_ref(), NORMAL, "SuccessfulDelete", format!("delete Pod {name} in StatefulSet {set_name} successful"));
                        Ok(())
                    }
                    Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
                    Err(e) => {
                        self.recorder.event(set.as_ref(), WARNING, "FailedDelete", format!("delete Pod {name} in StatefulSet {set_name} failed error: {}", message(&e)));
                        Err(Error::api("delete", format!("pod {namespace}/{name}"), e))
                    }
                }
            }
        }
    }

    /// Sets the owner references of the pod's claims per the retention policy.
    async fn update_claim_owners(&self, set: &StatefulSet, pod: &Pod, ordinal: i32, scaled_down: bool) -> Result<()> {
        let policy = set.spec.as_ref().and_then(|s| s.persistent_volume_claim_retention_policy.clone()).unwrap_or_default();
        let when_deleted = policy.when_deleted.as_deref().unwrap_or("Retain");
        let when_scaled = policy.when_scaled.as_deref().unwrap_or("Retain");
        let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
        let set_ref = util::owner_ref("apps/v1", "StatefulSet", &set.metadata);
        let pod_ref = util::owner_ref("v1", "Pod", &pod.metadata);
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        for wanted in util::claims_for(set, ordinal, None) {
            let name = wanted.metadata.name.clone().unwrap_or_default();
            let Some(claim) = self.claims.get(Some(namespace), &name) else { continue };
            let refs = claim.metadata.owner_references.clone().unwrap_or_default();
            let Some(new_refs) = util::claim_owners(&refs, &set_ref, &pod_ref, when_deleted, when_scaled, scaled_down) else { continue };
            let patch = serde_json::json!({"metadata": {"ownerReferences": new_refs, "resourceVersion": claim.metadata.resource_version}});
            match api.patch(&name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api("update owners of", format!("persistentvolumeclaim {namespace}/{name}"), e)),
            }
        }
        Ok(())
    }

    /// Creates the ordinal's missing claims (upstream `createPersistentVolumeClaims`).
    async fn create_claims(&self, set: &Arc<StatefulSet>, ordinal: i32, pod: &str) -> Result<()> {
        let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        let when_deleted = set.spec.as_ref().and_then(|s| s.persistent_volume_claim_retention_policy.as_ref()).and_then(|p| p.when_deleted.as_deref());
        let owner = (when_deleted == Some("Delete")).then(|| util::owner_ref("apps/v1", "StatefulSet", &set.metadata));
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        for claim in util::claims_for(set, ordinal, owner.as_ref()) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            if self.claims.get(Some(namespace), &name).is_some() {
                continue;
            }
            match api.create(&PostParams::default(), &claim).await {
                Ok(_) => self.recorder.event(set.as_ref(), NORMAL, "SuccessfulCreate", format!("create Claim {name} Pod {pod} in StatefulSet {set_name} success")),
                Err(e) if status_code(&e) == Some(409) => {}
                Err(e) => {
                    self.recorder.event(set.as_ref(), WARNING, "FailedCreate", format!("create Claim {name} for Pod {pod} in StatefulSet {set_name} failed error: {}", message(&e)));
                    return Err(Error::api("create", format!("persistentvolumeclaim {namespace}/{name}"), e));
                }
            }
        }
        Ok(())
    }

    async fn update_status(&self, set: &StatefulSet, status: StatefulSetStatus) -> Result<()> {
        if set.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), set.metadata.namespace.as_deref().unwrap_or_default());
        let name = set.metadata.name.clone().unwrap_or_default();
        let mut updated = set.clone();
        updated.status = Some(status.clone());
        for attempt in 0..2 {
            match api.replace_status(&name, &PostParams::default(), &updated).await {
                Ok(_) => return Ok(()),
                Err(e) if is_conflict(&e) && attempt == 0 => {
                    updated = api.get(&name).await.map_err(|e| Error::api("get", &name, e))?;
                    updated.status = Some(status.clone());
                }
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(Error::api("update status of", format!("statefulset {name}"), e)),
            }
        }
        Ok(())
    }
}
