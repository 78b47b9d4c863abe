//! The local-path provisioner (as k3s's `rancher.io/local-path`): the default StorageClass
//! `local-path`, and for each pending claim of that class a hostPath PersistentVolume
//! `pvc-<claim uid>` at `<storage dir>/pvc-<claim uid>` on one node (node affinity
//! `kubernetes.io/hostname`), pre-bound to the claim so the binder binds the two. The
//! kubelet creates the directory when it mounts the volume (`DirectoryOrCreate`). Released
//! volumes with reclaimPolicy Delete are deleted, with their directory when it is on this
//! machine.
//!
//! The class is `Immediate` (k3s's is `WaitForFirstConsumer`, which needs the scheduler to
//! pick the node): the provisioner picks the node itself: the claim's
//! `volume.kubernetes.io/selected-node` if set, else this machine's node if it is Ready,
//! else the Ready schedulable node holding the fewest local-path volumes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::controller::{key_of, run_workers};
use crate::error::{is_not_found, status_code, Error, Result};
use crate::events::{Recorder, NORMAL, WARNING};
use crate::informer::{Change, Informer, Informers};
use crate::pvbinder::{ANN_DYNAMICALLY_PROVISIONED, ANN_SELECTED_NODE};

/// The provisioner name (k3s's).
pub const PROVISIONER: &str = "rancher.io/local-path";
/// The class created at start.
pub const CLASS: &str = "local-path";
/// The annotation naming the volume's node (k3s's provisioner writes the same).
pub const ANN_NODE: &str = "local.path.provisioner/selected-node";

/// Where volumes live and which node is this machine.
#[derive(Debug, Clone)]
pub struct LocalPathConfig {
    /// Volumes are `<storage_dir>/<pv name>` (k3s: `/var/lib/rancher/k3s/storage`).
    pub storage_dir: PathBuf,
    /// The node of this machine's agent, if any: its volume directories are removed here.
    pub node_name: Option<String>,
}

impl Default for LocalPathConfig {
    /// `/var/lib/rkube/storage`, no local node.
    fn default() -> Self {
        LocalPathConfig { storage_dir: PathBuf::from("/var/lib/rkube/storage"), node_name: None }
    }
}

/// The default StorageClass.
pub fn default_class() -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: Some(CLASS.into()),
            annotations: Some([("storageclass.kubernetes.io/is-default-class".to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        provisioner: PROVISIONER.into(),
        reclaim_policy: Some("Delete".into()),
        volume_binding_mode: Some("Immediate".into()),
        ..Default::default()
    }
}

fn is_ready(node: &Node) -> bool {
    let ready = node.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && !node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false)
}

/// The node a new volume goes to (see the module docs); `volumes` are the existing ones.
pub fn pick_node(selected: Option<&str>, local: Option<&str>, nodes: &[Arc<Node>], volumes: &[Arc<PersistentVolume>]) -> Option<String> {
    if let Some(n) = selected.filter(|n| !n.is_empty()) {
        return Some(n.to_owned());
    }
    let ready: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).filter(|n| is_ready(n)).collect();
    if let Some(l) = local.filter(|l| ready.iter().any(|n| n.metadata.name.as_deref() == Some(*l))) {
        return Some(l.to_owned());
    }
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    for v in volumes {
        if let Some(n) = v.metadata.annotations.as_ref().and_then(|a| a.get(ANN_NODE)) {
            *load.entry(n.as_str()).or_default() += 1;
        }
    }
    ready
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .min_by_key(|n| (load.get(n).copied().unwrap_or(0), n.to_string()))
        .map(str::to_owned)
}

/// The volume provisioned for `claim` on `node` (pre-bound to the claim).
pub fn volume_for(claim: &PersistentVolumeClaim, node: &str, storage_dir: &Path, reclaim_policy: &str) -> PersistentVolume {
    let name = format!("pvc-{}", claim.metadata.uid.as_deref().unwrap_or_default());
    let spec = claim.spec.clone().unwrap_or_default();
    let request = spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")).cloned();
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            annotations: Some([(ANN_DYNAMICALLY_PROVISIONED.to_string(), PROVISIONER.to_string()), (ANN_NODE.to_string(), node.to_string())].into()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: spec.access_modes.clone(),
            capacity: request.map(|q| [("storage".to_string(), q)].into()),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                name: claim.metadata.name.clone(),
                namespace: claim.metadata.namespace.clone(),
                uid: claim.metadata.uid.clone(),
                resource_version: claim.metadata.resource_version.clone(),
                ..Default::default()
            }),
            host_path: Some(HostPathVolumeSource { path: storage_dir.join(&name).display().to_string(), type_: Some("DirectoryOrCreate".into()) }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement { key: "kubernetes.io/hostname".into(), operator: "In".into(), values: Some(vec![node.into()]) }]),
                        match_fields: None,
                    }],
                }),
            }),
            persistent_volume_reclaim_policy: Some(reclaim_policy.into()),
            storage_class_name: spec.storage_class_name.clone(),
            volume_mode: spec.volume_mode.clone().or_else(|| Some("Filesystem".into())),
            ..Default::default()
        }),
        status: None,
    }
}

pub struct LocalPathProvisioner {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    config: LocalPathConfig,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    volumes: Arc<Informer<PersistentVolume>>,
    classes: Arc<Informer<StorageClass>>,
    nodes: Arc<Informer<Node>>,
    recorder: Recorder,
    /// Claims `namespace/name`; volumes `name`.
    queue: crate::queue::WorkQueue<ObjectKey>,
}

impl LocalPathProvisioner {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers, config: LocalPathConfig) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            config,
            claims: informers.get::<PersistentVolumeClaim>(),
            volumes: informers.get::<PersistentVolume>(),
            classes: informers.get::<StorageClass>(),
            nodes: informers.get::<Node>(),
            recorder: Recorder::new(informers.client().clone(), PROVISIONER),
            queue: Default::default(),
        });
        let queue = ctx.queue.clone();
        ctx.claims.add_handler(move |change| {
            if let Change::Applied { new, .. } = change {
                queue.add(key_of(new.as_ref()));
            }
        });
        let queue = ctx.queue.clone();
        ctx.volumes.add_handler(move |change| {
            if let Change::Applied { new, .. } = change {
                queue.add(key_of(new.as_ref()));
            }
        });
        let queue = ctx.queue.clone();
        let weak = Arc::downgrade(&ctx);
        ctx.nodes.add_handler(move |change| {
            // A claim waiting for a Ready node gets one.
            if let (Change::Applied { .. }, Some(ctx)) = (change, weak.upgrade()) {
                for c in ctx.claims.store().state().iter().filter(|c| c.spec.as_ref().and_then(|s| s.volume_name.as_deref()).is_none_or(str::is_empty)) {
                    queue.add(key_of(c.as_ref()));
                }
            }
        });
        LocalPathProvisioner { ctx }
    }

    /// Creates the default StorageClass if it does not exist, then provisions and deletes
    /// volumes until `shutdown`.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let classes: Api<StorageClass> = Api::all(ctx.client.clone());
        if ctx.classes.get(None, CLASS).is_none() {
            match classes.create(&PostParams::default(), &default_class()).await {
                Ok(_) => tracing::info!(class = CLASS, "created the default storage class"),
                Err(e) if status_code(&e) == Some(409) => {}
                Err(e) => tracing::warn!(class = CLASS, error = %e, "creating the default storage class failed"),
            }
        }
        let queue = ctx.queue.clone();
        run_workers("local-path-provisioner", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move {
                match key.namespace.is_some() {
                    true => ctx.provision(&key).await,
                    false => ctx.reclaim(&key.name).await,
                }
            }
        })
        .await;
    }
}

impl Context {
    /// Provisions a volume for a pending claim of a local-path class.
    async fn provision(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(claim) = self.claims.get(key.namespace.as_deref(), &key.name) else { return Ok(None) };
        let spec = claim.spec.clone().unwrap_or_default();
        if claim.metadata.deletion_timestamp.is_some() || spec.volume_name.as_deref().is_some_and(|n| !n.is_empty()) {
            return Ok(None);
        }
        let Some(class) = spec.storage_class_name.as_deref().and_then(|c| self.classes.get(None, c)) else { return Ok(None) };
        if class.provisioner != PROVISIONER {
            return Ok(None);
        }
        let name = format!("pvc-{}", claim.metadata.uid.as_deref().unwrap_or_default());
        if self.volumes.get(None, &name).is_some() {
            return Ok(None);
        }
        let annotations = claim.metadata.annotations.clone().unwrap_or_default();
        let selected = annotations.get(ANN_SELECTED_NODE).map(String::as_str);
        if class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer") && selected.is_none() {
            return Ok(None); // the scheduler picks the node
        }
        let (nodes, volumes) = (self.nodes.store().state(), self.volumes.store().state());
        let Some(node) = pick_node(selected, self.config.node_name.as_deref(), &nodes, &volumes) else {
            self.recorder.event(claim.as_ref(), WARNING, "ProvisioningFailed", "no Ready node to provision the volume on".into());
            return Ok(Some(Duration::from_secs(10)));
        };
        let ns = key.namespace.as_deref().unwrap_or_default();
        self.recorder.event(claim.as_ref(), NORMAL, "Provisioning", format!("External provisioner is provisioning volume for claim \"{ns}/{}\"", key.name));
        let policy = class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into());
        let pv = volume_for(&claim, &node, &self.config.storage_dir, &policy);
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api.create(&PostParams::default(), &pv).await {
            Ok(_) => {
                self.recorder.event(claim.as_ref(), NORMAL, "ProvisioningSucceeded", format!("Successfully provisioned volume {name}"));
                Ok(None)
            }
            Err(e) if status_code(&e) == Some(409) => Ok(None),
            Err(e) => {
                self.recorder.event(claim.as_ref(), WARNING, "ProvisioningFailed", format!("failed to provision volume with StorageClass \"{}\": {e}", class.metadata.name.as_deref().unwrap_or_default()));
                Err(Error::api("create", format!("persistentvolume {name}"), e))
            }
        }
    }

    /// Deletes a Released volume of ours whose policy is Delete (and its directory when it
    /// is on this machine and under the storage dir).
    async fn reclaim(&self, name: &str) -> Result<Option<Duration>> {
        let Some(pv) = self.volumes.get(None, name) else { return Ok(None) };
        let ours = pv.metadata.annotations.as_ref().and_then(|a| a.get(ANN_DYNAMICALLY_PROVISIONED)).is_some_and(|p| p == PROVISIONER);
        let spec = pv.spec.clone().unwrap_or_default();
        let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
        if !ours || !released || spec.persistent_volume_reclaim_policy.as_deref() != Some("Delete") || pv.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let node = pv.metadata.annotations.as_ref().and_then(|a| a.get(ANN_NODE)).cloned();
        if let (Some(node), Some(local), Some(hp)) = (node, self.config.node_name.as_deref(), spec.host_path.as_ref()) {
            let path = PathBuf::from(&hp.path);
            if node == local && path.starts_with(&self.config.storage_dir) && path != self.config.storage_dir {
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        self.recorder.event(pv.as_ref(), WARNING, "VolumeFailedDelete", format!("removing {}: {e}", path.display()));
                        return Err(Error::Failed(format!("removing {}: {e}", path.display())));
                    }
                }
            }
        }
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::api("delete", format!("persistentvolume {name}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus, PersistentVolumeClaimSpec};

    fn node(name: &str, ready: bool) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: None,
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: if ready { "True" } else { "False" }.into(), ..Default::default() }]),
                ..Default::default()
            }),
        })
    }

    fn claim() -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta { name: Some("www-web-0".into()), namespace: Some("ns".into()), uid: Some("u1".into()), ..Default::default() },
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: Some(CLASS.into()),
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn volumes_go_to_the_selected_then_local_then_least_loaded_ready_node() {
        let nodes = vec![node("a", true), node("b", true), node("c", false)];
        let on_a = vec![Arc::new(volume_for(&claim(), "a", Path::new("/s"), "Delete"))];
        assert_eq!(pick_node(Some("c"), Some("a"), &nodes, &[]).as_deref(), Some("c"));
        assert_eq!(pick_node(None, Some("b"), &nodes, &on_a).as_deref(), Some("b"));
        assert_eq!(pick_node(None, Some("c"), &nodes, &on_a).as_deref(), Some("b"), "the local node is not Ready");
        assert_eq!(pick_node(None, None, &nodes, &[]).as_deref(), Some("a"));
        assert_eq!(pick_node(None, None, &[node("c", false)], &[]), None);
    }

    #[test]
    fn provisioned_volumes_are_host_paths_pinned_to_their_node_and_pre_bound() {
        let pv = volume_for(&claim(), "n1", Path::new("/var/lib/rkube/storage"), "Delete");
        let spec = pv.spec.as_ref().unwrap();
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-u1"));
        assert_eq!(spec.host_path.as_ref().unwrap().path, "/var/lib/rkube/storage/pvc-u1");
        assert_eq!(spec.claim_ref.as_ref().unwrap().uid.as_deref(), Some("u1"));
        assert_eq!(spec.storage_class_name.as_deref(), Some(CLASS));
        let term = &spec.node_affinity.as_ref().unwrap().required.as_ref().unwrap().node_selector_terms[0];
        assert_eq!(term.match_expressions.as_ref().unwrap()[0].values.as_deref(), Some(&["n1".to_string()][..]));
        assert_eq!(pv.metadata.annotations.as_ref().unwrap()[ANN_DYNAMICALLY_PROVISIONED], PROVISIONER);
    }
}
