//! ControllerRevisions: the template history of DaemonSets and StatefulSets (upstream
//! `pkg/controller/history` and the `constructHistory`/`getStatefulSetRevisions` code of
//! both controllers). Each distinct pod template is stored once, as the strategic patch
//! `{"spec":{"template":{..., "$patch":"replace"}}}`, in a revision named
//! `<owner>-<hash>`; the live template's revision always has the highest number.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};

use crate::controller::controller_ref;
use crate::error::{is_not_found, Error, Result};
use crate::informer::Informer;

/// The label pods (and revisions) carry to name their revision (upstream
/// `apps.ControllerRevisionHashLabelKey` / `DefaultDaemonSetUniqueLabelKey`).
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// Upstream `history.ControllerRevisionHashLabel`, on every revision.
pub const REVISION_HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// Default `spec.revisionHistoryLimit` of DaemonSets and StatefulSets.
pub const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// The revision data of a pod template (upstream `getPatch`).
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template stored in a revision's data.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = revision.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

fn fnv32a(bytes: &[u8], mut hash: u32) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The hash naming a revision with this data (upstream `HashControllerRevision`: FNV-1a of
/// the data, salted with the collision count, in `SafeEncodeString`'s alphabet).
pub fn hash(data: &Value, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    let mut h = fnv32a(&bytes, 0x811c_9dc5);
    if let Some(c) = collision_count.filter(|c| *c != 0) {
        h = fnv32a(&c.to_le_bytes(), h);
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string().bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

/// The cached revisions controlled by the owner with this UID, oldest revision first.
pub fn owned(revisions: &Informer<ControllerRevision>, namespace: &str, owner_uid: &str) -> Vec<Arc<ControllerRevision>> {
    let mut out: Vec<_> = revisions
        .in_namespace(namespace)
        .into_iter()
        .filter(|r| controller_ref(&r.metadata).is_some_and(|c| c.uid == owner_uid))
        .collect();
    out.sort_by(|a, b| a.revision.cmp(&b.revision).then_with(|| a.metadata.name.cmp(&b.metadata.name)));
    out
}

fn data_of(r: &ControllerRevision) -> Option<&Value> {
    r.data.as_ref().map(|d| &d.0)
}

/// What [`ensure`] needs to know about the owner.
pub struct Owner<'a> {
    pub reference: OwnerReference,
    pub namespace: &'a str,
    /// The owner's template labels (copied onto the revision, as upstream).
    pub labels: BTreeMap<String, String>,
    pub collision_count: Option<i32>,
}

/// Makes sure the revision holding `data` exists and is the newest (upstream
/// `constructHistory`/`createRevision`): reuses an equal revision (renumbering it above the
/// others if it is not the newest) or creates `<owner>-<hash>`. Returns it.
pub async fn ensure(client: &kube::Client, owner: &Owner<'_>, existing: &[Arc<ControllerRevision>], data: Value) -> Result<ControllerRevision> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), owner.namespace);
    let max = existing.iter().map(|r| r.revision).max().unwrap_or(0);
    if let Some(same) = existing.iter().rev().find(|r| data_of(r) == Some(&data)) {
        if same.revision == max {
            return Ok(same.as_ref().clone());
        }
        let mut bumped = same.as_ref().clone();
        bumped.revision = max + 1;
        let name = bumped.metadata.name.clone().unwrap_or_default();
        return api.replace(&name, &PostParams::default(), &bumped).await.map_err(|e| Error::api("update", format!("controllerrevision {name}"), e));
    }
    let h = hash(&data, owner.collision_count);
    let name = format!("{}-{}", owner.reference.name, h);
    let mut labels = owner.labels.clone();
    labels.insert(REVISION_HASH_LABEL.into(), h);
    let revision = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(owner.namespace.into()),
            labels: Some(labels),
            owner_references: Some(vec![owner.reference.clone()]),
            ..Default::default()
        },
        data: Some(RawExtension(data.clone())),
        revision: max + 1,
    };
    match api.create(&PostParams::default(), &revision).await {
        Ok(r) => Ok(r),
        Err(e) if crate::error::status_code(&e) == Some(409) => {
            // Created by an earlier sync whose event has not reached the cache yet.
            let found = api.get(&name).await.map_err(|e| Error::api("get", format!("controllerrevision {name}"), e))?;
            let ours = controller_ref(&found.metadata).is_some_and(|c| c.uid == owner.reference.uid);
            if ours && data_of(&found) == Some(&data) {
                Ok(found)
            } else {
                Err(Error::Failed(format!("controllerrevision {name} exists with other content (hash collision)")))
            }
        }
        Err(e) => Err(Error::api("create", format!("controllerrevision {name}"), e)),
    }
}

/// The revisions to delete so that at most `limit` unused ones remain (upstream
/// `truncateHistory`/`cleanupHistory`): the oldest first, never one in `live` (names of the
/// current and update revisions and of revisions pods still use).
pub fn to_truncate<'a>(revisions: &'a [Arc<ControllerRevision>], live: &HashSet<String>, limit: i32) -> Vec<&'a ControllerRevision> {
    let unused: Vec<&ControllerRevision> =
        revisions.iter().map(|r| r.as_ref()).filter(|r| !live.contains(r.metadata.name.as_deref().unwrap_or_default())).collect();
    let excess = unused.len().saturating_sub(limit.max(0) as usize);
    unused.into_iter().take(excess).collect()
}

/// Deletes revisions (already gone is fine).
pub async fn delete(client: &kube::Client, namespace: &str, revisions: &[&ControllerRevision]) -> Result<()> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), namespace);
    for r in revisions {
        let name = r.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::api("delete", format!("controllerrevision {name}"), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(name: &str, n: i64) -> Arc<ControllerRevision> {
        Arc::new(ControllerRevision {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            data: None,
            revision: n,
        })
    }

    #[test]
    fn template_round_trips_through_revision_data_and_hash_depends_on_it() {
        let t = PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some([("app".to_string(), "a".to_string())].into()), ..Default::default() }),
            spec: None,
        };
        let data = template_patch(&t);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let r = ControllerRevision { data: Some(RawExtension(data.clone())), ..Default::default() };
        assert_eq!(template_of(&r), Some(t.clone()));
        let mut t2 = t.clone();
        t2.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert("v".into(), "2".into());
        assert_ne!(hash(&data, None), hash(&template_patch(&t2), None));
        assert_eq!(hash(&data, None), hash(&data, Some(0)));
        assert_ne!(hash(&data, None), hash(&data, Some(1)));
    }

    #[test]
    fn truncation_keeps_live_revisions_and_the_newest_unused_ones() {
        let revs = vec![rev("a", 1), rev("b", 2), rev("c", 3), rev("d", 4)];
        let live: HashSet<String> = ["a".to_string(), "d".to_string()].into();
        let gone: Vec<_> = to_truncate(&revs, &live, 1).iter().map(|r| r.metadata.name.clone().unwrap()).collect();
        assert_eq!(gone, ["b"]);
        assert!(to_truncate(&revs, &live, 10).is_empty());
    }
}
