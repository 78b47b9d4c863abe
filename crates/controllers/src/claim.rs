//! Adoption and release of dependents by a controller (upstream `ControllerRefManager`):
//! a controller claims the objects its selector matches that have no controller, and gives
//! up the ones it controls that no longer match.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use rkube_api::selector::LabelSelector;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::controller::{controller_ref, name_of};
use crate::error::{is_not_found, Error, Result};

/// What to do with one candidate dependent.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours and matching.
    Keep,
    /// An orphan that matches: take it.
    Adopt,
    /// Ours but no longer matching: let go.
    Release,
    /// Someone else's, or not ours to take.
    Ignore,
}

/// Decides one dependent (pure): `owner_uid` is the controller's UID, `owner_deleting` whether
/// it is being deleted (a deleting owner neither adopts nor releases).
pub fn decide(owner_uid: &str, owner_deleting: bool, selector: &LabelSelector, child: &ObjectMeta) -> Claim {
    let empty = Default::default();
    let matches = selector.matches(child.labels.as_ref().unwrap_or(&empty));
    match controller_ref(child) {
        Some(r) if r.uid == owner_uid => match (matches, owner_deleting) {
            (true, _) => Claim::Keep,
            (false, false) => Claim::Release,
            (false, true) => Claim::Ignore,
        },
        Some(_) => Claim::Ignore,
        None if matches && !owner_deleting && child.deletion_timestamp.is_none() => Claim::Adopt,
        None => Claim::Ignore,
    }
}

/// Claims `candidates` for the owner referenced by `owner`: adopts and releases through
/// merge patches of `ownerReferences` (with a resourceVersion precondition, so a concurrent
/// change makes it a conflict and the owner retries from fresh state). Returns the dependents
/// the owner controls afterwards.
pub async fn claim<C>(
    client: &kube::Client,
    owner: &OwnerReference,
    owner_deleting: bool,
    selector: &LabelSelector,
    candidates: Vec<Arc<C>>,
) -> Result<Vec<Arc<C>>>
where
    C: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
{
    let mut claimed = Vec::new();
    for child in candidates {
        let meta = child.meta();
        let api: Api<C> = Api::namespaced(client.clone(), meta.namespace.as_deref().unwrap_or_default());
        let name = meta.name.clone().unwrap_or_default();
        let refs: Vec<OwnerReference> = meta.owner_references.clone().unwrap_or_default();
        let new_refs = match decide(&owner.uid, owner_deleting, selector, meta) {
            Claim::Keep => {
                claimed.push(child);
                continue;
            }
            Claim::Ignore => continue,
            Claim::Adopt => refs.into_iter().chain(std::iter::once(owner.clone())).collect::<Vec<_>>(),
            Claim::Release => refs.into_iter().filter(|r| r.uid != owner.uid).collect(),
        };
        let adopt = new_refs.iter().any(|r| r.uid == owner.uid);
        let patch = json!({"metadata": {"ownerReferences": new_refs, "resourceVersion": meta.resource_version}});
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) if adopt => {
                tracing::debug!(owner = %owner.name, object = %name_of(meta), "adopted");
                claimed.push(child);
            }
            Ok(_) => tracing::debug!(owner = %owner.name, object = %name_of(meta), "released"),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::api(if adopt { "adopt" } else { "release" }, name_of(meta), e)),
        }
    }
    Ok(claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(labels: &[(&str, &str)], controller_uid: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            owner_references: controller_uid.map(|uid| {
                vec![OwnerReference { uid: uid.into(), controller: Some(true), ..Default::default() }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn orphans_matching_the_selector_are_adopted_and_non_matching_dependents_released() {
        let sel = LabelSelector::parse("app=web").unwrap();
        assert_eq!(decide("me", false, &sel, &meta(&[("app", "web")], None)), Claim::Adopt);
        assert_eq!(decide("me", false, &sel, &meta(&[("app", "web")], Some("me"))), Claim::Keep);
        assert_eq!(decide("me", false, &sel, &meta(&[("app", "db")], Some("me"))), Claim::Release);
        assert_eq!(decide("me", false, &sel, &meta(&[("app", "web")], Some("other"))), Claim::Ignore);
        assert_eq!(decide("me", false, &sel, &meta(&[("app", "db")], None)), Claim::Ignore);
        assert_eq!(decide("me", true, &sel, &meta(&[("app", "web")], None)), Claim::Ignore, "a deleting owner adopts nothing");
        assert_eq!(decide("me", true, &sel, &meta(&[("app", "db")], Some("me"))), Claim::Ignore);
    }
}
