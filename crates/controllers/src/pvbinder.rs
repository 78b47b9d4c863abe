//! The `persistentvolume-binder` controller (upstream
//! `pkg/controller/volume/persistentvolume/pv_controller.go`, binding only): binds each
//! pending PersistentVolumeClaim to the smallest Available PersistentVolume of its class
//! that has its access modes, volume mode, label selector and size (a volume pre-bound to
//! the claim through `claimRef` wins); marks volumes Available, Bound or Released, and
//! claims Bound or Lost; a claim of a class with a provisioner and no fitting volume is
//! annotated for that provisioner and waits for it.
//!
//! A claim of a `WaitForFirstConsumer` class waits for the scheduler's
//! `volume.kubernetes.io/selected-node` annotation and then binds only volumes reachable
//! from that node. (rkube's scheduler does not set that annotation yet, so such claims bind
//! only when something else sets it; the built-in `local-path` class is `Immediate`.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, VolumeNodeAffinity};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rkube_api::quantity::Quantity;
use rkube_api::ObjectKey;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller::{key_of, run_workers, RESYNC_PERIOD};
use crate::error::{is_not_found, Error, Result};
use crate::events::{Recorder, NORMAL, WARNING};
use crate::informer::{Change, Informer, Informers};

pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const ANN_DYNAMICALLY_PROVISIONED: &str = "pv.kubernetes.io/provisioned-by";
/// The provisioner of classes that have none.
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

fn storage(q: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>) -> i128 {
    q.and_then(|m| m.get("storage")).and_then(|q| Quantity::parse(&q.0).ok()).map(|q| q.value()).unwrap_or(0)
}

/// The storage a claim requests, in bytes.
pub fn claim_request(claim: &PersistentVolumeClaim) -> i128 {
    storage(claim.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.as_ref()))
}

/// The storage a volume has, in bytes.
pub fn capacity(pv: &PersistentVolume) -> i128 {
    storage(pv.spec.as_ref().and_then(|s| s.capacity.as_ref()))
}

/// The claim's class ("" for none).
pub fn class_of(claim: &PersistentVolumeClaim) -> &str {
    claim.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or_default()
}

fn phase(pv: &PersistentVolume) -> &str {
    pv.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

/// Whether a volume's node affinity admits `node` (no affinity admits every node).
pub fn reachable_from(affinity: Option<&VolumeNodeAffinity>, node: &Node) -> bool {
    let Some(required) = affinity.and_then(|a| a.required.as_ref()) else { return true };
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    required.node_selector_terms.iter().any(|term| {
        let exprs = term.match_expressions.as_deref().unwrap_or_default();
        let fields = term.match_fields.as_deref().unwrap_or_default();
        let value_ok = |op: &str, values: &[String], v: Option<&String>| match op {
            "In" => v.is_some_and(|v| values.contains(v)),
            "NotIn" => v.is_none_or(|v| !values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        };
        (!exprs.is_empty() || !fields.is_empty())
            && exprs.iter().all(|r| value_ok(&r.operator, r.values.as_deref().unwrap_or_default(), labels.get(&r.key)))
            && fields.iter().all(|r| r.key == "metadata.name" && value_ok(&r.operator, r.values.as_deref().unwrap_or_default(), node.metadata.name.as_ref()))
    })
}

fn pre_bound_to(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> Option<bool> {
    let r = pv.spec.as_ref()?.claim_ref.as_ref()?;
    let same = r.namespace == claim.metadata.namespace && r.name == claim.metadata.name;
    Some(same && r.uid.as_deref().is_none_or(|u| u.is_empty() || Some(u) == claim.metadata.uid.as_deref()))
}

/// Whether the volume satisfies the claim: class, volume mode, access modes, selector, size.
fn satisfies(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let (Some(ps), Some(cs)) = (pv.spec.as_ref(), claim.spec.as_ref()) else { return false };
    let mode = |m: Option<&String>| m.map(String::as_str).unwrap_or("Filesystem").to_owned();
    let pv_modes = ps.access_modes.clone().unwrap_or_default();
    let labels = pv.metadata.labels.clone().unwrap_or_default();
    let selected = match &cs.selector {
        None => true,
        Some(sel) => rkube_api::selector::LabelSelector::from_k8s(sel).is_ok_and(|s| s.matches(&labels)),
    };
    ps.storage_class_name.as_deref().unwrap_or_default() == class_of(claim)
        && mode(ps.volume_mode.as_ref()) == mode(cs.volume_mode.as_ref())
        && cs.access_modes.iter().flatten().all(|m| pv_modes.contains(m))
        && selected
        && capacity(pv) >= claim_request(claim)
}

/// Upstream `findBestMatchForClaim`: a volume pre-bound to the claim if it satisfies it,
/// else the smallest Available one that does (reachable from `node` when given).
pub fn best_match<'a>(claim: &PersistentVolumeClaim, volumes: &'a [Arc<PersistentVolume>], node: Option<&Node>) -> Option<&'a PersistentVolume> {
    let usable = |pv: &PersistentVolume| {
        pv.metadata.deletion_timestamp.is_none()
            && satisfies(pv, claim)
            && node.is_none_or(|n| reachable_from(pv.spec.as_ref().and_then(|s| s.node_affinity.as_ref()), n))
    };
    if let Some(pv) = volumes.iter().find(|pv| pre_bound_to(pv, claim) == Some(true) && usable(pv)) {
        return Some(pv.as_ref());
    }
    volumes
        .iter()
        .filter(|pv| pre_bound_to(pv, claim).is_none() && matches!(phase(pv), "" | "Available") && usable(pv))
        .min_by(|a, b| capacity(a).cmp(&capacity(b)).then_with(|| a.metadata.name.cmp(&b.metadata.name)))
        .map(|pv| pv.as_ref())
}

/// What a volume's phase should be given its claim (upstream `syncVolume`): Available
/// without a claim (or pre-bound to one not created yet), Bound while the claim it names
/// exists, Released once that claim is gone.
pub fn volume_phase(pv: &PersistentVolume, claim: Option<&PersistentVolumeClaim>) -> &'static str {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else { return "Available" };
    let uid = r.uid.as_deref().unwrap_or_default();
    match claim {
        Some(c) if uid.is_empty() || c.metadata.uid.as_deref() == Some(uid) => {
            let bound = c.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == pv.metadata.name.as_deref();
            if bound { "Bound" } else if uid.is_empty() { "Available" } else { "Bound" }
        }
        _ if uid.is_empty() => "Available",
        _ => "Released",
    }
}

pub struct PersistentVolumeBinder {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    volumes: Arc<Informer<PersistentVolume>>,
    classes: Arc<Informer<StorageClass>>,
    nodes: Arc<Informer<Node>>,
    recorder: Recorder,
    /// Claims are `namespace/name`, volumes `name` (no namespace).
    queue: crate::queue::WorkQueue<ObjectKey>,
}

impl PersistentVolumeBinder {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            claims: informers.get::<PersistentVolumeClaim>(),
            volumes: informers.get::<PersistentVolume>(),
            classes: informers.get::<StorageClass>(),
            nodes: informers.get::<Node>(),
            recorder: Recorder::new(informers.client().clone(), "persistentvolume-controller"),
            queue: Default::default(),
        });
        let queue = ctx.queue.clone();
        let weak = Arc::downgrade(&ctx);
        ctx.claims.add_handler(move |change| {
            let claim = match change {
                Change::Applied { new, .. } => new,
                Change::Deleted(c) => c,
            };
            queue.add(key_of(claim.as_ref()));
            // The volume bound to it re-evaluates (Released when the claim goes).
            if let Some(pv) = claim.spec.as_ref().and_then(|s| s.volume_name.clone()).filter(|n| !n.is_empty()) {
                queue.add(ObjectKey::new(None, &pv));
            }
            if let (Change::Deleted(_), Some(ctx)) = (change, weak.upgrade()) {
                for pv in ctx.volumes.store().state() {
                    let r = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
                    if r.is_some_and(|r| r.name == claim.metadata.name && r.namespace == claim.metadata.namespace) {
                        queue.add(key_of(pv.as_ref()));
                    }
                }
            }
        });
        let queue = ctx.queue.clone();
        let weak = Arc::downgrade(&ctx);
        ctx.volumes.add_handler(move |change| {
            let pv = match change {
                Change::Applied { new, .. } => new,
                Change::Deleted(v) => v,
            };
            queue.add(key_of(pv.as_ref()));
            if let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                queue.add(ObjectKey::new(r.namespace.as_deref(), r.name.as_deref().unwrap_or_default()));
            } else if let Some(ctx) = weak.upgrade() {
                // A new Available volume may satisfy a pending claim.
                for c in ctx.claims.store().state().iter().filter(|c| c.spec.as_ref().and_then(|s| s.volume_name.as_deref()).is_none_or(str::is_empty)) {
                    queue.add(key_of(c.as_ref()));
                }
            }
        });
        let queue = ctx.queue.clone();
        let weak = Arc::downgrade(&ctx);
        ctx.classes.add_handler(move |_| {
            if let Some(ctx) = weak.upgrade() {
                for c in ctx.claims.store().state().iter().filter(|c| c.spec.as_ref().and_then(|s| s.volume_name.as_deref()).is_none_or(str::is_empty)) {
                    queue.add(key_of(c.as_ref()));
                }
            }
        });
        PersistentVolumeBinder { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("persistentvolume-binder", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move {
                match key.namespace.is_some() {
                    true => ctx.sync_claim(&key).await,
                    false => ctx.sync_volume(&key.name).await,
                }
            }
        })
        .await;
    }
}

impl Context {
    fn default_class(&self) -> Option<String> {
        let classes = self.classes.store().state();
        let defaults = classes.iter().filter(|c| {
            let a = c.metadata.annotations.as_ref();
            a.and_then(|a| a.get("storageclass.kubernetes.io/is-default-class")).is_some_and(|v| v == "true")
        });
        defaults.max_by_key(|c| (c.metadata.creation_timestamp.as_ref().map(|t| t.0), std::cmp::Reverse(c.metadata.name.clone()))).and_then(|c| c.metadata.name.clone())
    }

    /// Upstream `syncClaim`.
    async fn sync_claim(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let ns = key.namespace.as_deref().unwrap_or_default();
        let Some(claim) = self.claims.get(Some(ns), &key.name) else { return Ok(None) };
        if claim.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
        let volume_name = claim.spec.as_ref().and_then(|s| s.volume_name.clone()).filter(|n| !n.is_empty());
        let Some(volume_name) = volume_name else { return self.sync_unbound_claim(&claim, &api).await };
        let Some(pv) = self.volumes.get(None, &volume_name) else {
            if claim_phase(&claim) == "Bound" {
                self.recorder.event(claim.as_ref(), WARNING, "ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!".into());
                self.set_claim_phase(&api, &claim, "Lost", None).await?;
            }
            return Ok(Some(RESYNC_PERIOD));
        };
        match pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
            None => self.bind(&claim, &pv).await?,
            Some(r) if r.uid.as_deref() == claim.metadata.uid.as_deref() || r.uid.as_deref().is_none_or(str::is_empty) && r.name == claim.metadata.name => {
                self.bind(&claim, &pv).await?
            }
            Some(_) => {
                self.recorder.event(claim.as_ref(), WARNING, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly".into());
            }
        }
        Ok(Some(RESYNC_PERIOD))
    }

    async fn sync_unbound_claim(&self, claim: &PersistentVolumeClaim, api: &Api<PersistentVolumeClaim>) -> Result<Option<Duration>> {
        let name = claim.metadata.name.clone().unwrap_or_default();
        // Retroactive default class (upstream, GA in 1.28): a claim created before any
        // default class existed gets it now.
        if claim.spec.as_ref().is_some_and(|s| s.storage_class_name.is_none()) {
            if let Some(default) = self.default_class() {
                let patch = json!({"spec": {"storageClassName": default}});
                match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    // The update comes back through the watch and is synced then.
                    Ok(_) => return Ok(Some(RESYNC_PERIOD)),
                    // Refused (as by servers that keep the class immutable): bind class-less.
                    Err(kube::Error::Api(s)) => tracing::debug!(claim = %name, reason = %s.message, "default class not set"),
                    Err(e) => return Err(Error::api("set the default class of", format!("persistentvolumeclaim {name}"), e)),
                }
            }
        }
        let class_name = class_of(claim).to_owned();
        let class = (!class_name.is_empty()).then(|| self.classes.get(None, &class_name)).flatten();
        let annotations = claim.metadata.annotations.clone().unwrap_or_default();
        let wait_for_consumer = class.as_ref().and_then(|c| c.volume_binding_mode.as_deref()) == Some("WaitForFirstConsumer");
        let selected = annotations.get(ANN_SELECTED_NODE).and_then(|n| self.nodes.get(None, n));
        if wait_for_consumer && selected.is_none() {
            if claim_phase(claim) != "Pending" {
                self.set_claim_phase(api, claim, "Pending", None).await?;
            }
            return Ok(Some(RESYNC_PERIOD));
        }
        let volumes = self.volumes.store().state();
        if let Some(pv) = best_match(claim, &volumes, selected.as_deref()) {
            let pv = pv.clone();
            self.bind(claim, &pv).await?;
            return Ok(Some(RESYNC_PERIOD));
        }
        let provisioner = class.as_ref().map(|c| c.provisioner.clone()).filter(|p| p != NO_PROVISIONER);
        match provisioner {
            Some(p) => {
                if annotations.get(ANN_STORAGE_PROVISIONER) != Some(&p) {
                    let patch = json!({"metadata": {"annotations": {ANN_STORAGE_PROVISIONER: p, ANN_BETA_STORAGE_PROVISIONER: p}}});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| Error::api("annotate", format!("persistentvolumeclaim {name}"), e))?;
                    self.recorder.event(
                        claim,
                        NORMAL,
                        "ExternalProvisioning",
                        format!("Waiting for a volume to be created either by the external provisioner '{p}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."),
                    );
                }
            }
            None => {
                let message = match (&class_name, &class) {
                    (n, _) if n.is_empty() => "no persistent volumes available for this claim and no storage class is set".to_owned(),
                    (n, None) => format!("storageclass.storage.k8s.io \"{n}\" not found"),
                    _ => "no persistent volumes available for this claim".to_owned(),
                };
                self.recorder.event(claim, WARNING, "FailedBinding", message);
            }
        }
        if claim_phase(claim) != "Pending" {
            self.set_claim_phase(api, claim, "Pending", None).await?;
        }
        Ok(Some(RESYNC_PERIOD))
    }

    /// Upstream `bind`: the volume's claimRef and phase, then the claim's volumeName,
    /// annotations and phase. The volume is replaced with its cached resourceVersion, so two
    /// claims racing for one volume cannot both win.
    async fn bind(&self, claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> Result<()> {
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        let claim_name = claim.metadata.name.clone().unwrap_or_default();
        let ns = claim.metadata.namespace.clone().unwrap_or_default();
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            name: Some(claim_name.clone()),
            namespace: Some(ns.clone()),
            uid: claim.metadata.uid.clone(),
            resource_version: claim.metadata.resource_version.clone(),
            ..Default::default()
        };
        let current_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        if current_ref.is_none_or(|r| r.uid != reference.uid) {
            let mut updated = pv.clone();
            let spec = updated.spec.get_or_insert_with(Default::default);
            if current_ref.is_none() {
                updated.metadata.annotations.get_or_insert_with(Default::default).insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
            }
            spec.claim_ref = Some(reference);
            pvs.replace(&pv_name, &PostParams::default(), &updated).await.map_err(|e| Error::api("bind", format!("persistentvolume {pv_name}"), e))?;
        }
        if phase(pv) != "Bound" {
            let patch = json!({"status": {"phase": "Bound"}});
            pvs.patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| Error::api("update status of", format!("persistentvolume {pv_name}"), e))?;
        }
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
        let annotations = claim.metadata.annotations.clone().unwrap_or_default();
        let bound_here = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == Some(pv_name.as_str());
        if !bound_here || !annotations.contains_key(ANN_BIND_COMPLETED) {
            let mut ann = json!({ANN_BIND_COMPLETED: "yes"});
            if !bound_here {
                ann[ANN_BOUND_BY_CONTROLLER] = json!("yes");
            }
            let patch = json!({"metadata": {"annotations": ann, "resourceVersion": claim.metadata.resource_version}, "spec": {"volumeName": pv_name}});
            api.patch(&claim_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| Error::api("bind", format!("persistentvolumeclaim {ns}/{claim_name}"), e))?;
        }
        if claim_phase(claim) != "Bound" {
            self.set_claim_phase(&api, claim, "Bound", Some(pv)).await?;
            tracing::debug!(claim = %format!("{ns}/{claim_name}"), volume = %pv_name, "bound");
        }
        Ok(())
    }

    async fn set_claim_phase(&self, api: &Api<PersistentVolumeClaim>, claim: &PersistentVolumeClaim, phase: &str, pv: Option<&PersistentVolume>) -> Result<()> {
        let name = claim.metadata.name.clone().unwrap_or_default();
        let mut status = json!({"phase": phase});
        if let Some(spec) = pv.and_then(|p| p.spec.as_ref()) {
            status["accessModes"] = json!(spec.access_modes);
            status["capacity"] = json!(spec.capacity);
        }
        match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&json!({"status": status}))).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api("update status of", format!("persistentvolumeclaim {name}"), e)),
        }
    }

    /// Upstream `syncVolume` (without reclaiming: dynamically provisioned volumes are
    /// deleted by their provisioner).
    async fn sync_volume(&self, name: &str) -> Result<Option<Duration>> {
        let Some(pv) = self.volumes.get(None, name) else { return Ok(None) };
        if pv.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let claim = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).and_then(|r| self.claims.get(r.namespace.as_deref(), r.name.as_deref().unwrap_or_default()));
        let want = volume_phase(&pv, claim.as_deref());
        if phase(&pv) != want {
            if want == "Released" {
                self.recorder.event(pv.as_ref(), NORMAL, "VolumeReleased", "the claim bound to this volume was deleted".into());
            }
            let api: Api<PersistentVolume> = Api::all(self.client.clone());
            let patch = json!({"status": {"phase": want}});
            match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api("update status of", format!("persistentvolume {name}"), e)),
            }
        }
        Ok(Some(RESYNC_PERIOD))
    }
}

fn claim_phase(claim: &PersistentVolumeClaim) -> &str {
    claim.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

#[cfg(test)]
mod tests;
